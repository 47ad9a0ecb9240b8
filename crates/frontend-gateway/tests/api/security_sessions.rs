//! The adversarial suite, second round (issue 12): sessions. SECURITY.md maps each attack to its test.
