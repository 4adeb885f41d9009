//! The local pipeline: a runner that executes Batch task specifications on this machine, and the
//! `dev` command that wires Azurite, the handler and a blob feed together.
