// Input of rotor-aot-errors.test: a prefill without a decode.
func.func @prefill(%h: tensor<?x8xf32>, %p: tensor<?xi32>, %k: tensor<16x1x8xf32>, %v: tensor<16x1x8xf32>)
    -> (tensor<?x8xf32>, tensor<16x1x8xf32>, tensor<16x1x8xf32>) {
  return %h, %k, %v : tensor<?x8xf32>, tensor<16x1x8xf32>, tensor<16x1x8xf32>
}
