// Mocha's spec output, plus the counts for test/run.mjs to add up: written to the file
// $CORRAL_TEST_SUMMARY, or printed as a 'CORRAL_TEST_SUMMARY {json}' line when that is 'stdout'
// (the VM suite, whose files stay in the VM).
const { writeFileSync } = require('node:fs');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      const counts = JSON.stringify({ passes, failures, pending });
      if (process.env.CORRAL_TEST_SUMMARY === 'stdout') console.log(`CORRAL_TEST_SUMMARY ${counts}`);
      else if (process.env.CORRAL_TEST_SUMMARY) writeFileSync(process.env.CORRAL_TEST_SUMMARY, counts);
    });
  }
}

module.exports = SummaryReporter;
