# Keras JSON and TensorFlow.js checks (included by tests/CMakeLists.txt).
#  keras_json (unit): model_config / export-json against the configs, read
#  with Python's json module and h5py.
if(TARGET ctrain)
  add_test(NAME keras_json COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/keras_json.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(keras_json PROPERTIES LABELS unit TIMEOUT 300)
endif()

# tfjs_node, tfjs_browser (label tfjs): TF.js itself loads every export,
# predicts as ctrain does, and the web page runs in headless Chromium
# (tests/tfjs/tfjs.sh). They need `npm ci` in tests/tfjs (launcher/setup.sh
# --test runs it before configuring) and, for the page, /usr/bin/chromium.
find_program(CT_NODE node)
if(TARGET ctrain AND CT_NODE AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/tfjs/node_modules/@tensorflow/tfjs/package.json)
  add_test(NAME tfjs_node COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tfjs/tfjs.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} node)
  set_tests_properties(tfjs_node PROPERTIES LABELS tfjs TIMEOUT 900)
  if(EXISTS /usr/bin/chromium AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/tfjs/node_modules/playwright-core/package.json)
    add_test(NAME tfjs_browser COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tfjs/tfjs.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} browser)
    set_tests_properties(tfjs_browser PROPERTIES LABELS tfjs TIMEOUT 600)
  else()
    message(STATUS "tfjs_browser test off: needs /usr/bin/chromium and npm ci in tests/tfjs")
  endif()
else()
  message(STATUS "tfjs tests off: need node and npm ci in tests/tfjs (launcher/setup.sh --test does both)")
endif()
