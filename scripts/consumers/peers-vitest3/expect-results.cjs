// Fails unless vitest's JSON report shows the conformance suite was collected and passed (not just the one test).
const results = require('./results.json');
if (results.numFailedTests > 0 || results.numPassedTests < 50) {
  console.error(`${results.numPassedTests} passed, ${results.numFailedTests} failed: expected the conformance suite (50+ tests) to pass`);
  process.exit(1);
}
console.log(`${results.numPassedTests} conformance tests passed`);
