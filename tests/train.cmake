# End-to-end tests through the ctrain executable: the CLI contract (label
# unit) and short training runs on the bundled and Debian-packaged data
# (label train) that assert the accuracy the examples must reach.
add_test(NAME e2e_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} cli)
set_tests_properties(e2e_cli PROPERTIES LABELS unit TIMEOUT 300)
foreach(case checkpoints tensorboard sources)
  add_test(NAME e2e_${case} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${case})
  set_tests_properties(e2e_${case} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()
add_test(NAME e2e_augment COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} augment)
set_tests_properties(e2e_augment PROPERTIES LABELS train TIMEOUT 600)
add_test(NAME e2e_kill COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} kill)
set_tests_properties(e2e_kill PROPERTIES LABELS train TIMEOUT 600)
foreach(example breast_cancer boston_housing fashion_mnist fashion_mnist_cnn)
  add_test(NAME train_${example}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${example})
  set_tests_properties(train_${example} PROPERTIES LABELS train TIMEOUT 900)
endforeach()
# Ten epochs of the Fashion-MNIST CNN take minutes on an AVX2-only 2-core
# machine: a long run, outside the default set (ctest -L slow).
set_tests_properties(train_fashion_mnist_cnn PROPERTIES LABELS "train;slow" TIMEOUT 1800)

# Data-parallel runs under mpirun (label mpi): 1/2/4 ranks agree, uneven
# shards finish, a failing rank ends the job.
foreach(case mpi_equal mpi_uneven mpi_fail mpi_resume mpi_augment)
  add_test(NAME e2e_${case} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh $<TARGET_FILE:ctrain> ${PROJECT_SOURCE_DIR} ${case})
  set_tests_properties(e2e_${case} PROPERTIES LABELS mpi TIMEOUT 600)
endforeach()
