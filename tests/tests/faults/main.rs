//! Fault injection end to end: the real binary interrupted, damaged or starved, and what the
//! next command makes of it. Each module is one kind of fault.
mod kill;
