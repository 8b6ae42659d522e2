// A Node.js host for the composed s3lect cron component (transpiled by jco): it calls the
// component's `step-once` again after each invocation's suggested delay, the way a scheduler
// would trigger it. All configuration is the component's own (environment variables); the
// elector's state lives in object storage, so this process keeps nothing between invocations.
//
//   node elector.mjs [--once] [--hook-log FILE]
//
// Prints one JSON line per invocation. --hook-log appends "acquire TERM NS" / "lose TERM NS"
// lines on leadership changes (the format of s3lect's shell-hook logs in the tests).
// --once: a single invocation; exit 0 as leader, 3 as follower, 1 on error (like `s3lect step`).
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: { once: { type: 'boolean', default: false }, 'hook-log': { type: 'string' } },
});
const component = await import(process.env.S3LECT_JCO_MODULE ?? './gen/s3lect-cron.js');

const nowNs = () => BigInt(Date.now()) * 1_000_000n;
// u64 fields (terms, delays) arrive as BigInt.
const json = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x));
let leading = null; // term we last reported as leader

function transition(event, term) {
  if (opts['hook-log']) appendFileSync(opts['hook-log'], `${event} ${term} ${nowNs()}\n`);
}

function invoke() {
  try {
    const report = component.cron.stepOnce();
    const { isLeader, term } = report.status;
    if (leading !== null && (!isLeader || term !== leading)) {
      transition('lose', leading);
      leading = null;
    }
    if (isLeader && leading === null) {
      transition('acquire', term);
      leading = term;
    }
    // The same line the component prints for `wasi:cli/run` and `handle-cron-event`.
    const st = report.status;
    console.log(json({
      serverID: st.serverId, isLeader, leaderID: st.leaderId, term, steps: report.steps,
      restored: report.restored, nextStepInMs: report.nextStepInMs,
      leaseRemainingMs: report.leaseRemainingMs ?? null, lastError: st.lastError ?? null,
    }));
    return report;
  } catch (e) {
    // A ComponentError carries the component's error string as its payload.
    console.error(`s3lect-node: ${e.payload ?? e}`);
    return null;
  }
}

if (opts.once) {
  const report = invoke();
  process.exit(report === null ? 1 : report.status.isLeader ? 0 : 3);
}
for (;;) {
  const report = invoke();
  const delay = report ? Number(report.nextStepInMs) : 1000;
  await new Promise((r) => setTimeout(r, delay));
}
