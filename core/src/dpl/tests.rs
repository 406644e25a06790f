//! Property tests of the DPL format and the pylock.toml round trip.
