//! Lambda `validate-input`: check the console input, name every problem at once, and return the state the other steps read.

clonesync::lambda_function!(clonesync::handlers::validate_input);
