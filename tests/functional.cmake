# Functional models end to end (tests/functional.sh): log names, resume and
# bad input (label unit), 1/2/4 ranks agreeing (label mpi).
foreach(case logs resume badinput)
  add_test(NAME functional_${case} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/functional.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${case})
  set_tests_properties(functional_${case} PROPERTIES LABELS unit TIMEOUT 300 ENVIRONMENT "OMP_NUM_THREADS=2")
endforeach()
add_test(NAME functional_mpi COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/functional.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} mpi)
set_tests_properties(functional_mpi PROPERTIES LABELS mpi TIMEOUT 600 ENVIRONMENT "OMP_NUM_THREADS=1")
