//! Shared bits of the benchmark tools. The tools themselves are in `src/bin/`.
