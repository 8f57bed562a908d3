// Mocha's spec output, plus the counts written to $CORRAL_TEST_SUMMARY for test/run.mjs to add up.
const { writeFileSync } = require('node:fs');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const { passes, failures, pending } = runner.stats ?? this.stats;
      if (process.env.CORRAL_TEST_SUMMARY) {
        writeFileSync(process.env.CORRAL_TEST_SUMMARY, JSON.stringify({ passes, failures, pending }));
      }
    });
  }
}

module.exports = SummaryReporter;
