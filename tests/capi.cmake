# The public C API (label unit): the installed library used from a separate
# CMake project and from pkg-config, its examples run and checked, and the
# shared library's symbol table free of exit/abort.
add_test(NAME capi_installed
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/capi/installed.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
# Programs built outside against a sanitizer-built libctrain.so would need
# the sanitizer runtime preloaded: those builds run it only on request.
if(CT_SANITIZE OR CT_TSAN)
  set_tests_properties(capi_installed PROPERTIES LABELS install TIMEOUT 600)
else()
  set_tests_properties(capi_installed PROPERTIES LABELS unit TIMEOUT 600)
endif()
add_test(NAME capi_never_exits
         COMMAND ${CMAKE_COMMAND} -DLIB=$<TARGET_FILE:ctrain_shared> -P ${CMAKE_CURRENT_LIST_DIR}/capi/never_exits.cmake)
set_tests_properties(capi_never_exits PROPERTIES LABELS unit TIMEOUT 60)

# Plugins: MyDense from examples/capi, and two broken ones for the loader.
foreach(p plugin_mydense:${PROJECT_SOURCE_DIR}/examples/capi/plugin_mydense.c
          plugin_nosym:${CMAKE_CURRENT_LIST_DIR}/plugins/plugin_nosym.c
          plugin_badabi:${CMAKE_CURRENT_LIST_DIR}/plugins/plugin_badabi.c)
  string(REPLACE ":" ";" p ${p})
  list(GET p 0 name)
  list(GET p 1 file)
  add_library(${name} MODULE ${file})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/core)
endforeach()
add_test(NAME capi_plugins
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/capi/plugins.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR}
                 $<TARGET_FILE:plugin_mydense> $<TARGET_FILE:plugin_nosym> $<TARGET_FILE:plugin_badabi>)
set_tests_properties(capi_plugins PROPERTIES LABELS unit TIMEOUT 300)

# The DCGAN example, and its quality check: a long run (tens of minutes per
# epoch on two cores), so only with -DCT_LONG_TESTS=ON (label long).
add_executable(dcgan ${PROJECT_SOURCE_DIR}/examples/capi/dcgan.c)
target_link_libraries(dcgan PRIVATE ctrain_shared)
option(CT_LONG_TESTS "Add the long tests (the DCGAN quality check)" OFF)
if(CT_LONG_TESTS)
  add_test(NAME capi_dcgan_quality
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/capi/dcgan_quality.sh $<TARGET_FILE:ctrain> $<TARGET_FILE:dcgan>
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(capi_dcgan_quality PROPERTIES LABELS long TIMEOUT 86400)
endif()
