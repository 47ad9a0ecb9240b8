//! The adversarial suite, second round (issue 12): proxy. SECURITY.md maps each attack to its test.
