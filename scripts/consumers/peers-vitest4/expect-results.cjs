// Fails unless vitest's JSON report (the file named by the argument) shows that the conformance suite was
// collected and passed, not just the one test of this file.
const file = process.argv[2] ?? 'results.json';
const results = require(`./${file}`);
if (results.numFailedTests > 0 || results.numPassedTests < 50) {
  console.error(`${file}: ${results.numPassedTests} passed, ${results.numFailedTests} failed; expected the conformance suite (50+ tests) to pass`);
  process.exit(1);
}
console.log(`${results.numPassedTests} conformance tests passed`);
