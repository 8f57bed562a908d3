import { appendFileSync } from 'node:fs';

/** Where runc-style log lines go (--log, --log-format): containerd and conmon read the last
 * "level":"error" line of a json log. */
export interface OciLog {
  file: string | null;
  format: 'text' | 'json';
}

/** Writes an error to the log (when there is one) and to stderr. */
export function logError(log: OciLog, message: string): void {
  logLine(log, 'error', message);
}

/** Writes a warning (what failed without failing the command: a poststop hook) the same ways. */
export function logWarning(log: OciLog, message: string): void {
  logLine(log, 'warning', message);
}

function logLine(log: OciLog, level: 'error' | 'warning', message: string): void {
  const time = new Date().toISOString();
  if (log.file) {
    const line = log.format === 'json' ? JSON.stringify({ level, msg: message, time }) : `time="${time}" level=${level} msg=${JSON.stringify(message)}`;
    appendFileSync(log.file, `${line}\n`);
  }
  process.stderr.write(`corral-oci: ${level === 'warning' ? 'warning: ' : ''}${message}\n`);
}
