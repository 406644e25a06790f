//! Shared helpers for the end-to-end tests: building synthetic wheels, locating the binary.
