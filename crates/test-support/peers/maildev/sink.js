// The SMTP test peer: maildev with the options given on the command line (see
// `crates/test-support/src/smtp.rs`), which exits when its stdin closes, so it never outlives
// the test process that started it.
'use strict'

process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()

const MailDev = require('maildev')
new MailDev().listen()
