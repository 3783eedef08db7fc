#!/usr/bin/env node
// The `interlock` command line: demo, run, check, validate, the operator commands, the shadow report and the audit
// log reader. Exit codes:
// 0 ok, 1 refused or failed, 2 usage.
// It never starts with a declaration problem; it prints every problem with file, field and reason instead.

import { realpathSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from '../core/log.js';
import { DeclarationError, formatProblem } from '../core/problems.js';
import { loadCell } from '../declarations/load.js';
import { DigestMismatchError, startRuntime } from '../app/compose.js';
import { nodeVersionProblem } from './node-version.js';
import type { CliIo } from './cli-io.js';
import { DEFAULT_OPERATOR_BROKER, isOperatorCommand, runOperatorCommand } from './operator.js';
import { hasTlsFiles, loadTlsFiles, TlsConfigError, type TlsFiles, type TlsMaterial } from '../transport/tls-files.js';
import { hasCloudOptions, readCloudOptions } from './cloud-options.js';
// The other commands' modules are imported when their command runs: `interlock run` starts without loading the
// demo's simulators, the audit tools or the Greengrass SDK (aws-crt, a native library, only for `greengrass`).

const DEFAULT_CELL = 'safety-bounds/demo-cell';
const DEFAULT_STATE = '.interlock';

export const USAGE = `Usage: interlock <command> [options]

Commands:
  demo       Interlock + embedded broker + simulated arm + scripted demo agent, with a live view.
             --duration <time>   stop after this long (e.g. 30s, 2m); default: until Ctrl-C
             --rounds <n>        stop after n rounds of the script; default: until Ctrl-C
             --pause <time>      pause between demo steps (default 400ms)
  run        Run the interlock: takes commands and device state over MQTT and releases what is safe.
             --broker <url>      external MQTT broker (mqtt://host:1883); default: embedded broker
             --port <n>          embedded broker port (default 1883)  --host <addr> (default 127.0.0.1)
             --prefix <p>        topic prefix (default none)
             --expected-digest <sha256>  refuse to start unless the declarations have this digest
                                 (print it with interlock validate)
             --tls-ca <file>     CA bundle (PEM) the mqtts:// broker's certificate must chain to
             --tls-cert <file>   client certificate (PEM) the broker identifies the interlock by
             --tls-key <file>    its private key (PEM, unencrypted); checked against the certificate
             --cloud-url <url>   AWS IoT Core (mqtts://ENDPOINT:8883) for metrics and audit forwarding; needs --thing-name,
                                 --cloud-cert and --cloud-key (--cloud-ca: default Node's root CAs)
             --thing-name <name> the AWS IoT thing this interlock reports as
             --metrics-interval <time>  how often metrics are reported (default 300s, never less)
             --metrics-topic <topic>    also publish them on this plain topic ({thing}: the thing name)
             --no-defender       no Device Defender reports (then --metrics-topic is needed)
             --no-audit-forwarding  keep audit records on the device (retention then needs audit archive)
             --audit-forward-rate <n>  audit records sent per second at most (default 1000)
  greengrass  Run as a Greengrass v2 component: configuration from the nucleus (IPC), the interlock on local
             pub/sub, RUNNING once ready, deployments' configurations validated, live updates. Started by
             the recipe's Startup script, which passes:
             --work-path <dir>      the component's work folder ({work:path}); state/ goes there by default
             --artifact-path <dir>  the unpacked artifact's folder; its demo cell is the default cell
  check      Offline: reads one command per line on stdin, writes one JSON decision per line on stdout.
             The lines are one session (an allowed line counts as released); a line may carry the
             state it meets and its history (history.states, history.releases). Each output line
             lists in "unevaluated" the rules the input gave too little history for.
  validate   Loads a cell folder and prints every problem; exit 1 if there is any.
             interlock validate [dir]
  approvals  Lists the commands held for an operator's approval, newest last.
             --json              one JSON object per line instead of the table
  approve    Approves a held command (signed with the operator's key); exit 0 only when it was released.
             interlock approve <id> [--note <text>]
  reject     Rejects a held command: interlock reject <id> [--note <text>]
  restore    Restores a demoted or quarantined agent: interlock restore <agent> [--note <text>]
  quarantine  Quarantines an agent (every actuation denied, stops pass): interlock quarantine <agent> --reason <text>
  mode       Forces a device's reduced limits, or back to automatic: interlock mode <device> reduced|auto
  shadow-report  Compares the shadow policy set's verdicts with the enforced ones, from the audit log.
             --since <ISO time>  only decisions from then on  --json  one JSON object instead of the text
  audit      Reads <state-dir>/audit.db (or --db <file>) read-only: interlock audit verify|export|trace|tail (archive writes)
             verify              check the hash chain: ok and the head hash, or the first broken seq (exit 1)
               --against SEQ:HASH|FILE  also check the cloud receiver's acknowledged head is held with that hash
             verify --archive <file> [--key <pub.pem>]  check an archive on its own (default key:
                                 <state-dir>/keys/interlock.pub.pem)
             archive --out <file|folder> [--upto <seq>]  for sites without cloud: the unacknowledged records
                                 up to the newest signed checkpoint into one verifiable file, then acknowledged
             export              every record as one JSON line, in seq order; filters:
                                 --since <ISO> (inclusive) --until <ISO> (exclusive) --agent <id> --device <id>
                                 --verdict allow|hold|deny --kind decision|outcome|event
             trace <id>          a command's chain (decision, resolution, outcomes) by command id, command digest,
                                 approval id or agent session, then each command's story (plan, command, state,
                                 decision, approval, release, outcome); --cell <dir> re-verifies the signatures;
                                 --json for JSON lines
             tail                the last records, one line each: -n <n> (default 20), --follow until Ctrl-C, --json
  provision  Creates or updates, idempotently, the Device Defender custom metrics, the security profile and its
             attachment to a thing group (run from a workstation or CI with AWS credentials; docs/provisioning.md)
             --thing-group <name>  the thing group to watch (required)  --region <r>  AWS region
             --profile <name>      security profile (default interlock-<cell id>)
             --max-denied <n>      denials per 5 minutes before an alarm (default 20)
             --max-audit-backlog <n>  unacknowledged audit records before an alarm (default 10000)
             --max-audit-space <pct>  audit space in use before an alarm (default 80)
             --dry-run           print the plan, make only read calls  --json  one JSON object
  replay     Re-decides the recorded commands of <state-dir>/audit.db (or --db <file>) against another cell folder:
             interlock replay --cell <other> [--from <seq>] [--to <seq>] [--json]
  help       This text.

Common options:
  --cell <dir>       cell declarations folder (default ${DEFAULT_CELL})
  --state-dir <dir>  audit database and keys (default ${DEFAULT_STATE})
  --log <level>      info | warn | error | silent (default info; demo: warn)

Operator options (approvals, approve, reject, restore, quarantine, mode):
  --broker <url>     the interlock's broker (default ${DEFAULT_OPERATOR_BROKER})
  --prefix <p>       the interlock's topic prefix (default none)
  --operator <id>    who signs (default: the only operator in agents.yaml with the role the command needs)
  --key <file>       the operator's private key (default <state-dir>/agent-keys/<kid>.key.pem)
  --tls-ca <file> --tls-cert <file> --tls-key <file>   TLS files for an mqtts:// broker, as for run
`;

/** Parses `30s`, `2m`, `500ms` or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number.isFinite(value) ? value * factor : undefined;
}

/** Where the operator commands and the shadow report write; tests pass their own. */
export interface MainOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const PROCESS_OUTPUT: MainOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

function cliIo(output: MainOutput): CliIo {
  return {
    out: (line) => output.stdout(`${line}\n`),
    err: (line) => output.stderr(`${line}\n`),
    usageError: (message) => {
      output.stderr(`interlock: ${message}\n\n${USAGE}`);
      return 2;
    },
  };
}

interface StopSignals {
  /** Resolves on the first SIGINT or SIGTERM. */
  readonly requested: Promise<void>;
  /** Gives the signals back to Node's default handling (a start that failed: nothing is left to stop). */
  release(): void;
}

function interruption(): StopSignals {
  let handler: () => void = () => undefined;
  const requested = new Promise<void>((resolve) => {
    handler = (): void => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      // SAFETY: a stop is under way; further SIGTERMs must not cut it short. The Greengrass nucleus sends SIGTERM to
      // every process of the component, this one and the sudo it started it through (which relays its own), so two
      // arrive on every stop. A second Ctrl-C still ends the process at once.
      process.on('SIGTERM', () => process.stderr.write('SIGTERM again: already stopping\n'));
      resolve();
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
  return {
    requested,
    release: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * Runs a stop with a timer holding the event loop open until it has finished. Node ends a process whose loop has
 * nothing left to wait for, with exit code 0, even while an `await` is pending: a stop step that waits on something
 * the loop does not count (an unref'd worker, a socket already closed) would end the process before the last step,
 * which records the clean stop (identity store's run marker), and the next start would report an unclean stop.
 */
async function heldOpenUntil<T>(work: () => Promise<T>): Promise<T> {
  const hold = setInterval(() => undefined, 60_000);
  try {
    return await work();
  } finally {
    clearInterval(hold);
  }
}

/** Exits with `code` in a moment unless the process has ended by itself by then (the timer holds nothing open). */
function exitSoon(code: number): void {
  setTimeout(() => process.exit(code), 2_000).unref();
}

export async function main(argv: string[], output: MainOutput = PROCESS_OUTPUT, nodeVersion: string = process.versions.node): Promise<number> {
  const tooOld = nodeVersionProblem(nodeVersion);
  if (tooOld !== undefined) {
    output.stderr(`interlock: refusing to start: ${tooOld}\n`);
    return 1;
  }
  const usageError = cliIo(output).usageError;
  const [command, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        cell: { type: 'string' },
        'state-dir': { type: 'string' },
        log: { type: 'string' },
        duration: { type: 'string' },
        pause: { type: 'string' },
        rounds: { type: 'string' },
        broker: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        prefix: { type: 'string' },
        'expected-digest': { type: 'string' },
        json: { type: 'boolean' },
        note: { type: 'string' },
        operator: { type: 'string' },
        key: { type: 'string' },
        reason: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        agent: { type: 'string' },
        device: { type: 'string' },
        verdict: { type: 'string' },
        against: { type: 'string' },
        kind: { type: 'string' },
        lines: { type: 'string', short: 'n' },
        follow: { type: 'boolean' },
        from: { type: 'string' },
        db: { type: 'string' },
        to: { type: 'string' },
        out: { type: 'string' },
        upto: { type: 'string' },
        archive: { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'cloud-url': { type: 'string' },
        'cloud-ca': { type: 'string' },
        'cloud-cert': { type: 'string' },
        'cloud-key': { type: 'string' },
        'thing-name': { type: 'string' },
        'metrics-interval': { type: 'string' },
        'metrics-topic': { type: 'string' },
        'no-defender': { type: 'boolean' },
        'no-audit-forwarding': { type: 'boolean' },
        'audit-forward-rate': { type: 'string' },
        'work-path': { type: 'string' },
        'artifact-path': { type: 'string' },
        region: { type: 'string' },
        'thing-group': { type: 'string' },
        profile: { type: 'string' },
        'max-denied': { type: 'string' },
        'max-audit-backlog': { type: 'string' },
        'max-audit-space': { type: 'string' },
        'dry-run': { type: 'boolean' },
      },
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const level = (values.log ?? (command === 'demo' ? 'warn' : 'info')) as LogLevel;
  if (!['info', 'warn', 'error', 'silent'].includes(level)) return usageError(`--log must be info, warn, error or silent, not ${level}`);
  const log = createLogger('interlock', level);
  const cellDirectory = values.cell ?? positionals[0] ?? DEFAULT_CELL;
  const tlsFiles: TlsFiles = {
    ...(values['tls-ca'] === undefined ? {} : { caFile: values['tls-ca'] }),
    ...(values['tls-cert'] === undefined ? {} : { certFile: values['tls-cert'] }),
    ...(values['tls-key'] === undefined ? {} : { keyFile: values['tls-key'] }),
  };
  const stateDirectory = values['state-dir'] ?? DEFAULT_STATE;
  // The TLS files are read and checked once, here, before anything connects.
  let tls: TlsMaterial = {};
  if (hasTlsFiles(tlsFiles)) {
    // SAFETY: a TLS option that a command would ignore could make someone believe a connection is encrypted.
    if (command !== 'run' && !isOperatorCommand(command)) {
      return usageError(`--tls-ca, --tls-cert and --tls-key apply to run and the operator commands, not to ${command ?? 'no command'}`);
    }
    if (command === 'run' && values.broker === undefined) return usageError('--tls-ca, --tls-cert and --tls-key are for an external broker: give --broker mqtts://host:8883');
    try {
      tls = loadTlsFiles(values.broker ?? DEFAULT_OPERATOR_BROKER, tlsFiles);
    } catch (error) {
      if (error instanceof TlsConfigError) return usageError(error.message);
      throw error;
    }
  }

  // SAFETY: a cloud option that a command would ignore could make someone believe metrics leave the device.
  if (command !== 'run' && hasCloudOptions(values)) return usageError(`the cloud and metrics options apply to run, not to ${command ?? 'no command'}`);

  try {
    switch (command) {
      case 'demo': {
        const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration);
        if (values.duration !== undefined && durationMs === undefined) return usageError(`--duration: cannot read "${values.duration}"`);
        const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
        if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1)) return usageError(`--rounds must be a whole number >= 1, not ${values.rounds ?? ''}`);
        const stepPauseMs = values.pause === undefined ? 400 : parseDuration(values.pause);
        if (stepPauseMs === undefined) return usageError(`--pause: cannot read "${values.pause ?? ''}"`);
        const { runDemo } = await import('./demo.js');
        const result = await runDemo({
          cellDirectory,
          stateDirectory,
          stepPauseMs,
          colour: process.stdout.isTTY === true,
          out: (line) => process.stdout.write(`${line}\n`),
          log,
          interrupted: interruption().requested,
          ...(durationMs === undefined ? {} : { durationMs }),
          ...(rounds === undefined ? {} : { rounds }),
        });
        return result.unauthorisedExecutions === 0 && result.chainOk && result.surprises === 0 ? 0 : 1;
      }
      case 'run': {
        const port = values.port === undefined ? 1883 : Number(values.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) return usageError(`--port must be 0-65535, not ${values.port ?? ''}`);
        const cloud = readCloudOptions(values, parseDuration, log);
        if (!cloud.ok) return usageError(cloud.problem);
        // SAFETY: the stop signals are taken from here on, before anything opens: a SIGTERM during start-up (or just
        // after the ready line) used to meet Node's default action and kill the process before it could close its
        // stores, so the next start reported an unclean stop. Now it stops cleanly as soon as the start completes.
        const stopSignals = interruption();
        const runtime = await startRuntime({
          ...(cloud.cloud === undefined ? {} : { cloud: cloud.cloud }),
          ...(cloud.metrics === undefined ? {} : { metrics: cloud.metrics }),
          ...(cloud.auditForwarding === undefined ? {} : { auditForwarding: cloud.auditForwarding }),
          brokerTls: tls,
          cellDirectory,
          stateDirectory,
          log,
          embeddedPort: port,
          ...(values.host === undefined ? {} : { embeddedHost: values.host }),
          ...(values.broker === undefined ? {} : { brokerUrl: values.broker }),
          ...(values.prefix === undefined ? {} : { topicPrefix: values.prefix }),
          ...(values['expected-digest'] === undefined ? {} : { expectedDigest: values['expected-digest'] }),
        }).catch((error: unknown) => {
          stopSignals.release();
          throw error;
        });
        log.info(`running; drivers verify releases with ${runtime.interlockPublicKeyPath}; Ctrl-C stops`);
        await stopSignals.requested;
        log.info('stopping: finishing in-flight commands');
        await heldOpenUntil(() => runtime.stop());
        return 0;
      }
      case 'greengrass': {
        // Everything comes from the component configuration and the environment the nucleus sets.
        for (const flag of ['work-path', 'artifact-path'] as const) {
          const value = values[flag];
          if (value !== undefined && !isAbsolute(value)) return usageError(`--${flag} must be an absolute path, not "${value}"`);
        }
        if (positionals.length > 0) return usageError(`greengrass takes no arguments, got ${positionals.join(' ')}`);
        // SAFETY: as for run, the stop signals are taken before anything opens (the nucleus may stop a component
        // that is still starting).
        const stopSignals = interruption();
        const { ComponentStartError, startComponent } = await import('../greengrass/component.js');
        let running;
        try {
          running = await startComponent({
            places: {
              ...(values['work-path'] === undefined ? {} : { workPath: values['work-path'] }),
              ...(values['artifact-path'] === undefined ? {} : { artifactPath: values['artifact-path'] }),
            },
          });
        } catch (error) {
          stopSignals.release();
          if (error instanceof ComponentStartError) {
            // SAFETY: everything opened was closed; should anything still hold the event loop open, the process
            // exits anyway, so the nucleus sees the failure (and restarts or marks it BROKEN) instead of a zombie.
            exitSoon(1);
            return 1;
          }
          throw error;
        }
        await stopSignals.requested;
        process.stderr.write(`${new Date().toISOString()} INFO  [interlock] SIGTERM: finishing in-flight commands, then stopping\n`);
        await heldOpenUntil(() => running.stop());
        exitSoon(0);
        return 0;
      }
      case 'check': {
        const loaded = loadCell(cellDirectory);
        if (!loaded.ok) throw new DeclarationError(loaded.problems);
        const { runCheck } = await import('./check.js');
        const summary = await runCheck(loaded.cell, process.stdin, process.stdout);
        log.info(`${summary.lines} commands: ${summary.allow} allow, ${summary.hold} hold, ${summary.deny} deny`);
        return 0;
      }
      case 'validate': {
        const loaded = loadCell(cellDirectory);
        if (!loaded.ok) {
          for (const problem of loaded.problems) process.stdout.write(`${formatProblem(problem)}\n`);
          process.stdout.write(`${loaded.problems.length} problem(s) in ${cellDirectory}\n`);
          return 1;
        }
        const d = loaded.cell.declarations;
        process.stdout.write(
          `${cellDirectory}: ok. cell ${d.cellId}, ${d.devices.size} device(s), ${d.agents.size} agent(s), ${loaded.cell.policies.policyIds.length} policies, digest ${d.digest}\n`,
        );
        return 0;
      }
      case 'shadow-report': {
        const io = cliIo(output);
        if (positionals.length > 0) return io.usageError(`shadow-report takes no arguments, got ${positionals.join(' ')}`);
        const sinceMs = values.since === undefined ? undefined : Date.parse(values.since);
        if (values.since !== undefined && !(/^\d{4}-\d{2}-\d{2}/.test(values.since) && Number.isFinite(sinceMs))) {
          return io.usageError(`--since: cannot read "${values.since}" as an ISO 8601 time (e.g. 2026-11-22T08:00:00Z)`);
        }
        const { runShadowReport } = await import('./shadow-report.js');
        return runShadowReport({ databasePath: join(stateDirectory, 'audit.db'), json: values.json === true, ...(sinceMs === undefined ? {} : { sinceMs }) }, io);
      }
      case 'replay': {
        const { runReplayCommand } = await import('./replay-command.js');
        return runReplayCommand(positionals, { cell: values.cell, databasePath: values.db ?? join(stateDirectory, 'audit.db'), from: values.from, to: values.to, json: values.json === true }, cliIo(output));
      }
      case 'audit': {
        const { runAuditCommand } = await import('./audit.js');
        return await runAuditCommand(
          positionals,
          {
            databasePath: values.db ?? join(stateDirectory, 'audit.db'),
            since: values.since,
            until: values.until,
            agent: values.agent,
            device: values.device,
            verdict: values.verdict,
            kind: values.kind,
            lines: values.lines,
            follow: values.follow,
            json: values.json,
            cell: values.cell,
            out: values.out,
            upto: values.upto,
            archive: values.archive,
            key: values.key,
            against: values.against,
          },
          cliIo(output),
        );
      }
      case 'provision': {
        const { runProvisionCommand } = await import('./provision.js');
        return await runProvisionCommand(
          positionals,
          {
            cellDirectory: values.cell ?? DEFAULT_CELL,
            region: values.region,
            thingGroup: values['thing-group'],
            profile: values.profile,
            maxDenied: values['max-denied'],
            maxAuditBacklog: values['max-audit-backlog'],
            maxAuditSpace: values['max-audit-space'],
            dryRun: values['dry-run'],
            json: values.json,
          },
          cliIo(output),
        );
      }
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        if (isOperatorCommand(command)) {
          return await runOperatorCommand(
            command,
            positionals,
            {
              // The positional is the approval id, agent or device here, never the cell folder.
              cellDirectory: values.cell ?? DEFAULT_CELL,
              stateDirectory,
              brokerUrl: values.broker ?? DEFAULT_OPERATOR_BROKER,
              tls,
              prefix: values.prefix ?? '',
              json: values.json === true,
              ...(values.operator === undefined ? {} : { operatorId: values.operator }),
              ...(values.key === undefined ? {} : { keyFile: values.key }),
              ...(values.note === undefined ? {} : { note: values.note }),
              ...(values.reason === undefined ? {} : { reason: values.reason }),
            },
            cliIo(output),
          );
        }
        return usageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof DeclarationError || error instanceof DigestMismatchError) {
      process.stderr.write(`interlock: refusing to start: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`interlock: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

// Run when executed directly (not when imported by tests); argv[1] may be npm's bin symlink.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`interlock: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
