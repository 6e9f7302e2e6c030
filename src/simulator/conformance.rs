//! Spec conformance: the simulator's responses against the spec's required fields and the daemon's own wire types.
