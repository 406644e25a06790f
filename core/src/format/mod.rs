//! The toolkit every binary format of dx-py is written with: little-endian integers at checked
//! offsets ([`bytes`]) and the fast corruption checks ([`checksum`]).
//!
//! The four formats (`.dxpkg`, DPL, `.dxtree`, the DXLC layout index) keep their own layouts and
//! error types; this module only owns how an integer is read or written and how a checksum is
//! computed, so that those rules are written once.
pub mod bytes;
pub mod checksum;
