/** Exit codes of `npm run fleet`. */
export const EXIT = {
  /** Done (or, with --dry-run, the plan was printed). */
  ok: 0,
  /** Compute refused or failed, or nothing matched: see stderr. */
  failure: 1,
  /** The command line is wrong: see stderr and --help. */
  usage: 2,
  /** `rollout status`: some MIG's update is not finished (`versionTarget.isReached` is false). */
  notFinished: 3,
} as const;

const COMMON = `Options of every command:
  --project ID              the Google Cloud project (default: GOOGLE_CLOUD_PROJECT, or the project of your
                            Application Default Credentials)
  --compute-endpoint URL    another Compute Engine API endpoint (default: COMPUTE_API_ENDPOINT, or Google's);
                            the sandbox's fake is http://127.0.0.1:PORT
  -h, --help                this text

Credentials: your own Application Default Credentials (gcloud auth application-default login). No GitHub key is
needed or read. Exit codes: 0 done, 1 failed (Compute refused, or nothing matched), 2 bad command line,
3 a rollout is not finished (rollout status).`;

export const USAGE: Readonly<Record<string, string>> = {
  '': `Usage: npm run fleet -- <command> [options]

Runner rollouts over the runner MIGs, with your own Google credentials.

Commands:
  templates create   a new instance template from a base one, with another actions/runner release
  templates list     instance templates and the actions/runner release each installs
  rollout canary     one canary VM (or --canary-size) per MIG on a new template
  rollout promote    the canary template becomes every VM's template
  rollout direct-update
                     a template for every VM at once, without a canary
  rollout status     per MIG: templates in use by how many VMs, and whether the update is done

A new actions/runner release goes out as: templates create, rollout canary, watch the canaries run jobs
(rollout status, the fleet status page), rollout promote.
Every command that changes something acts by default and prints what it would do with --dry-run.
Run npm run fleet -- <command> --help for a command's options.

${COMMON}`,

  'templates create': `Usage: npm run fleet -- templates create --from BASE --name NAME --runner-version VERSION --runner-sha256 SHA256 [--dry-run]

Creates instance template NAME as a copy of BASE whose VMs install actions/runner VERSION: the metadata items
github-runner-version and github-runner-sha256 are set (deploy/runner-startup.sh installs that release, checked
against SHA256, unless the VM's image already holds it). Templates cannot be changed: a new release is a new
template.

  --from BASE               the template to copy (a global instance template's name)
  --name NAME               the new template's name, e.g. gh-runner-2-331-0
  --runner-version VERSION  e.g. 2.331.0 (https://github.com/actions/runner/releases)
  --runner-sha256 SHA256    the SHA-256 of actions-runner-linux-x64-VERSION.tar.gz, from the release notes
  --dry-run                 print what would be created, change nothing

${COMMON}`,

  'templates list': `Usage: npm run fleet -- templates list

Lists the project's global instance templates with the actions/runner release each installs.

${COMMON}`,

  'rollout canary': `Usage: npm run fleet -- rollout canary --template T --regions REGEX [--group NAME] [--canary-size N] [--proactive] [--dry-run]

In every MIG whose region matches REGEX (and whose name matches NAME), sets two versions: a canary of N VMs
(default 1) on template T, and the rest on the MIG's current template.

By default the update is opportunistic: no running VM is touched; the next VMs the autoscaler creates fill the
canary first. Runner VMs are ephemeral, so the canary appears with the next job.

  --template T              the new template (a name, or a URL)
  --regions REGEX           regions of the MIGs to change (a zonal MIG is in its zone's region), matched
                            against the whole region name, e.g. 'us-.*' or 'us-central1|europe-west4'
  --group NAME              only MIGs whose whole name matches NAME (a name, or a regular expression)
  --canary-size N           canary VMs per MIG (default 1)
  --proactive               replace running VMs now. WARNING: a VM replaced while it runs a job kills that
                            job; use it only when no job may run on the old template (a critical update)
  --dry-run                 print what would change, change nothing

${COMMON}`,

  'rollout promote': `Usage: npm run fleet -- rollout promote --regions REGEX [--group NAME] [--proactive] [--dry-run]

In every matching MIG that has a canary, the canary's template becomes the template of every VM (one version
again). Opportunistic by default: running VMs keep their template until they go.

  --regions REGEX, --group NAME, --dry-run   as for rollout canary
  --proactive               replace running VMs now. WARNING: kills the jobs running on them

${COMMON}`,

  'rollout direct-update': `Usage: npm run fleet -- rollout direct-update --template T --regions REGEX [--group NAME] [--proactive] [--dry-run]

Sets template T for every VM of every matching MIG at once, without a canary (and drops a canary if there is
one). Opportunistic by default: running VMs keep their template until they go.

  --template T, --regions REGEX, --group NAME, --dry-run   as for rollout canary
  --proactive               replace running VMs now. WARNING: kills the jobs running on them

${COMMON}`,

  'rollout status': `Usage: npm run fleet -- rollout status [--regions REGEX] [--group NAME] [--json]

Per matching MIG (all, by default): its versions and targets, which templates its VMs run and how many, the
actions/runner release of each, and whether the update is done (versionTarget.isReached). Exits 3 when some
MIG's update is not done.

  --regions REGEX, --group NAME   as for rollout canary (default: every region)
  --json                          the same as JSON

${COMMON}`,
};
