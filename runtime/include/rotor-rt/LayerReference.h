//===- LayerReference.h - fp64 reference of a bundle's layer ----*- C++ -*-===//

#ifndef ROTOR_RT_LAYERREFERENCE_H
#define ROTOR_RT_LAYERREFERENCE_H

#include "rotor-rt/Bundle.h"

namespace rotor::rt {

/// The attention sublayer that `bundle`'s manifest describes ("layer"),
/// computed in fp64 by the reference ops on hidden_states [T, hidden] at
/// positions 0..T-1 (causal). Fails when the manifest has no layer.
Result<std::vector<double>> referenceLayer(const Bundle &bundle,
                                           const Tensor &hidden);

} // namespace rotor::rt

#endif // ROTOR_RT_LAYERREFERENCE_H
