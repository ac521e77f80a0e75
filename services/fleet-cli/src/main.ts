import { runFleetCli } from './run-fleet-cli.js';

// `npm run fleet -- <command>`: runner rollouts with the operator's own Google credentials.
process.exitCode = await runFleetCli(process.argv.slice(2));
