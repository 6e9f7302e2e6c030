//! Entry point: parse the command line and hand over to the library.

fn main() {}
