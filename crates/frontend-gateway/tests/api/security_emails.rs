//! The adversarial suite, second round (issue 12): emails. SECURITY.md maps each attack to its test.
