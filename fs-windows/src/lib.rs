//! The dx-py venv filesystem for Windows, over Dokan. Compiled only on Windows; elsewhere this
//! crate is empty so that the workspace builds everywhere.
