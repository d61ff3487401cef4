# Text features end to end (included by tests/CMakeLists.txt): training on
# real reviews and a slice of the novel, predict on raw text, generate,
# export-embeddings, malformed text configs and data.
if(TARGET ctrain)
  add_test(NAME text_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/text_cli.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR})
  set_tests_properties(text_cli PROPERTIES LABELS unit TIMEOUT 300 ENVIRONMENT "OMP_NUM_THREADS=2")
endif()
