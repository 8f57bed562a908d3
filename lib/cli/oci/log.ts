import { appendFileSync } from 'node:fs';

/** Where runc-style log lines go (--log, --log-format): containerd and conmon read the last
 * "level":"error" line of a json log. */
export interface OciLog {
  file: string | null;
  format: 'text' | 'json';
}

/** Writes an error to the log (when there is one) and to stderr. */
export function logError(log: OciLog, message: string): void {
  const time = new Date().toISOString();
  if (log.file) {
    const line = log.format === 'json' ? JSON.stringify({ level: 'error', msg: message, time }) : `time="${time}" level=error msg=${JSON.stringify(message)}`;
    appendFileSync(log.file, `${line}\n`);
  }
  process.stderr.write(`corral-oci: ${message}\n`);
}
