//! The `clonesync` command driven as a user would (`cli`) and the attacks
//! on what it installs (`attacks`), in one binary; `driver` runs the
//! command and reads what it leaves.

mod attacks;
mod cli;
mod driver;
