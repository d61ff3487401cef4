# Boosted trees through the ctrain executable (tests/trees/e2e_trees.sh):
# the CLI contract and --resume (label unit), 1/2/3/4 ranks growing the
# same trees (label mpi), accuracy against scikit-learn 1.2 (label train).
# The known-answer tests are tests/test_trees.c (label unit).
foreach(case cli mpi sklearn)
  add_test(NAME trees_${case}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/trees/e2e_trees.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${case})
endforeach()
set_tests_properties(trees_cli PROPERTIES LABELS unit TIMEOUT 300)
set_tests_properties(trees_mpi PROPERTIES LABELS mpi TIMEOUT 600 PROCESSORS 4)
set_tests_properties(trees_sklearn PROPERTIES LABELS train TIMEOUT 900)
