# Keras JSON and TensorFlow.js checks (included by tests/CMakeLists.txt).
#  keras_json (unit): model_config / export-json against the configs, read
#  with Python's json module and h5py.
if(TARGET ctrain)
  add_test(NAME keras_json COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/keras_json.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(keras_json PROPERTIES LABELS unit TIMEOUT 300)
endif()
