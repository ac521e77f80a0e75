import crypto from 'node:crypto';
import { html, SafeHtml } from './html.js';
import type { MigStatus, PoolStatus, StatusView, VmStatus } from './describe-status.js';
import type { DeliveryRecord } from './fleet-view.js';
import type { DeadlineLevel } from '#shared';
import { ERROR_AFTER_DAYS, UPDATE_WINDOW_DAYS, WARN_AFTER_DAYS } from '#shared';

/** How often the page reloads itself (`<meta http-equiv="refresh">`), in seconds. */
export const REFRESH_SECONDS = 30;

/** The page's only style sheet, inline; the Content-Security-Policy allows exactly this text by its hash. */
const STYLE = `
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--okbg:#dafbe1;--warn:#9a6700;--warnbg:#fff8c5;--err:#d1242f;--errbg:#ffebe9;--info:#0969da;--infobg:#ddf4ff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:var(--fg);background:#fff}
header{display:flex;flex-wrap:wrap;gap:.4rem 1.5rem;align-items:baseline;padding:.7rem 1.2rem;background:#24292f;color:#fff}
header h1{font-size:1.15rem;margin:0}
header span{color:#d1d9e0;font-size:.85rem}
main{padding:1rem 1.2rem 2rem}
h2{font-size:1.1rem;margin:1.6rem 0 .4rem;padding-bottom:.25rem;border-bottom:1px solid var(--line)}
h3{font-size:.9rem;margin:1rem 0 .3rem;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:.8rem}
.card{border:1px solid var(--line);border-radius:8px;padding:.7rem .9rem;background:var(--bg)}
.card h2{border:0;margin:0 0 .3rem;padding:0;font-size:1rem}
.card a{color:inherit}
.big{font-size:1.6rem;font-weight:600;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:.85rem;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right}
code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.78rem;font-weight:600;white-space:nowrap;border:1px solid transparent}
.b-ok,.b-current,.b-idle,.b-done{color:var(--ok);background:var(--okbg)}
.b-warn,.b-booting,.b-creating,.b-progress{color:var(--warn);background:var(--warnbg)}
.b-error,.b-expired,.b-lost,.b-unregistered,.b-failed{color:var(--err);background:var(--errbg)}
.b-busy,.b-canary,.b-info{color:var(--info);background:var(--infobg)}
.b-unknown,.b-stable,.b-previous,.b-deleting,.b-none{color:var(--muted);background:var(--bg);border-color:var(--line)}
.alert{border-radius:8px;padding:.6rem .9rem;margin:.6rem 0;border:1px solid}
.alert.error{color:var(--err);background:var(--errbg);border-color:#ffcecb}
.alert.warn{color:var(--warn);background:var(--warnbg);border-color:#f5e0a0}
.version{margin:.3rem 0}
details>summary{cursor:pointer;color:var(--muted);margin:.3rem 0}
footer{padding:0 1.2rem 1.5rem;color:var(--muted);font-size:.8rem}
`;

/**
 * The whole `<style>` element, built here rather than in a template: the CSP hash covers its text exactly, and
 * a formatter re-indenting a template would change it.
 */
const STYLE_ELEMENT = new SafeHtml(`<style>${STYLE}</style>`);

/** The Content-Security-Policy of the page: nothing but its own inline style, by hash; no script at all. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${crypto.createHash('sha256').update(STYLE).digest('base64')}'`,
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const LEVEL_WORDS: Readonly<Record<DeadlineLevel, string>> = {
  current: 'up to date',
  ok: 'update due',
  warn: `update soon (${WARN_AFTER_DAYS}+ days)`,
  error: `update now (${ERROR_AFTER_DAYS}+ days)`,
  expired: `past ${UPDATE_WINDOW_DAYS} days`,
  unknown: 'unknown',
};

function age(seconds: number | null): string {
  if (seconds === null) return '—';
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d`;
}

/** `3m ago`, with the exact time in the title. */
function when(iso: string | null | undefined, now: number): SafeHtml {
  const at = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(at)) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso!}" title="${iso!}"
    >${age(Math.max(0, Math.round((now - at) / 1000)))} ago</time
  >`;
}

const badge = (kind: string, text: string): SafeHtml =>
  html`<span class="badge b-${kind.toLowerCase().replace(/[^a-z-]/g, '')}">${text}</span>`;

const dash = (value: string | number | null | undefined): SafeHtml | string | number =>
  value === null || value === undefined || value === '' ? html`<span class="muted">—</span>` : value;

function poolCard(pool: PoolStatus): SafeHtml {
  const v = pool.runnerVersion;
  const updating = pool.migs.some((m) => m.isReached === false);
  return html`<div class="card">
    <h2><a href="#pool-${pool.name}">${pool.name}</a></h2>
    <div>
      <span class="big">${dash(pool.inUse)}</span><span class="muted"> / ${dash(pool.maxRunners)} VMs</span> ·
      <span class="big">${dash(pool.queuedJobs)}</span><span class="muted"> queued</span>
    </div>
    <div>
      ${badge(v.level, `runner ${v.version ?? '?'}: ${LEVEL_WORDS[v.level]}`)}
      ${v.daysLeft !== null && v.level !== 'current' && v.level !== 'expired' ? html` <span class="muted">${v.daysLeft} days left</span>` : ''}
    </div>
    <div>
      ${updating ? badge('progress', 'rollout in progress') : badge('done', 'templates settled')}
      ${pool.scaleUpBlockedReason ? badge('error', 'scale-up stopped') : ''}
      ${pool.migs.some((m) => m.error) ? badge('error', 'Compute unreadable') : ''}
    </div>
  </div>`;
}

function templateCell(mig: MigStatus): SafeHtml {
  if (mig.templates.length === 0) return html`<span class="muted">—</span>`;
  return html`${mig.templates.map(
    (t) =>
      html`<div>
        ${badge(t.role, t.role)} <code title="${t.url}">${t.name}</code>
        <span class="muted">runner ${t.runnerVersion ?? '?'}</span> ·
        ${t.members}${t.target === null ? '' : html` / ${t.target}`} VMs
      </div>`,
  )}`;
}

function migRow(mig: MigStatus): SafeHtml {
  const actions = Object.entries(mig.currentActions)
    .map(([action, n]) => `${action} ${n}`)
    .join(', ');
  const update =
    mig.isReached === null
      ? html`<span class="muted">—</span>`
      : html`${mig.isReached ? badge('done', 'done') : badge('progress', 'in progress')}
          <span class="muted">${(mig.updateType ?? '').toLowerCase()}</span>`;
  return html`<tr>
    <td><code title="${mig.mig}">${mig.name}</code></td>
    <td>${mig.location}</td>
    <td class="num">${dash(mig.targetSize)}</td>
    <td>${dash(actions)}</td>
    <td>${templateCell(mig)}</td>
    <td>${update}</td>
    <td>${mig.error ? html`<span class="badge b-error">Compute</span> ${mig.error}` : dash(mig.shortage)}</td>
  </tr>`;
}

function vmRow(vm: VmStatus): SafeHtml {
  const runner = vm.runner;
  const state = vm.state ?? (vm.currentAction === 'NONE' ? null : vm.currentAction);
  return html`<tr>
    <td><code>${vm.instance}</code>${vm.keep ? html` ${badge('info', 'keep')}` : ''}</td>
    <td>${dash(vm.mig)}</td>
    <td>${dash(vm.zone)}</td>
    <td>${dash(vm.currentAction)}</td>
    <td>${dash(vm.instanceStatus)}</td>
    <td>
      ${vm.template ? html`<code>${vm.template}</code> <span class="muted">${vm.templateVersion ?? '?'}</span>` : dash(null)}
    </td>
    <td>${state ? badge(state, state) : dash(null)}</td>
    <td>
      ${runner ? html`<code>${runner.name}</code> <span class="muted">#${runner.id}</span>` : dash(null)}
    </td>
    <td>${runner?.version ? html`<code>${runner.version}</code>` : dash(null)}</td>
    <td>${runner ? runner.status : dash(null)}</td>
    <td>${runner ? (runner.busy ? badge('busy', 'busy') : 'idle') : dash(null)}</td>
    <td>${runner ? runner.labels.join(', ') : dash(null)}</td>
    <td class="num">${age(vm.ageSeconds)}</td>
  </tr>`;
}

function deliveryTable(records: readonly DeliveryRecord[], now: number): SafeHtml {
  if (records.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table class="deliveries">
    <thead>
      <tr>
        <th>When</th>
        <th>Delivery</th>
        <th>Job</th>
        <th class="num">Status</th>
        <th>Why</th>
      </tr>
    </thead>
    <tbody>
      ${records.map(
        (r) =>
          html`<tr>
            <td>${when(r.at, now)}</td>
            <td>
              <code>${r.guid}</code>${r.deliveryId ? html` <span class="muted">#${r.deliveryId}</span>` : ''}
            </td>
            <td>${dash(r.jobId)}</td>
            <td class="num">${dash(r.status)}</td>
            <td>${dash(r.reason)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function poolSection(pool: PoolStatus, now: number): SafeHtml {
  const v = pool.runnerVersion;
  const versions = v.versions
    .map(
      (entry) =>
        `${entry.version ?? 'not connected yet'}: ${entry.runners} runner${entry.runners === 1 ? '' : 's'}`,
    )
    .join(', ');
  const newVms = v.templateVersions.length > 0 ? v.templateVersions.join(', ') : 'unknown';
  const levelClass =
    v.level === 'error' || v.level === 'expired' ? 'error' : v.level === 'warn' ? 'warn' : '';
  return html`<section id="pool-${pool.name}">
    <h2>${pool.name} <span class="muted">${pool.labels.join(', ')}</span></h2>
    ${pool.scaleUpBlockedReason ? html`<div class="alert error blocked"><strong>Scale-up stopped:</strong> ${pool.scaleUpBlockedReason}</div>` : ''}
    <div class="${levelClass ? `alert ${levelClass}` : 'version'}">${badge(v.level, LEVEL_WORDS[v.level])}
      Runner version: ${v.message}.${v.fromTemplatesOnly && v.version ? html` <span class="muted">(no runner reports a version: judged on the templates' version)</span>` : ''}
      <div class="versions">Runners report: ${versions || html`<span class="muted">none</span>`} · new VMs get: <code>${newVms}</code></div>
      ${v.level === 'expired' ? html`<br />New VMs would register and never get a job: roll out a newer template (<code>npm run fleet -- rollout canary</code>).` : ''}</div>

    <h3>MIGs</h3>
    <table class="migs">
      <thead><tr><th>MIG</th><th>Location</th><th class="num">Target</th><th>Members by action</th><th>Instance templates</th><th>Update</th><th>Shortage</th></tr></thead>
      <tbody>${pool.migs.map(migRow)}</tbody>
    </table>

    <h3>VMs and runners (${pool.vms.length})</h3>
    ${pool.hasJoin ? '' : html`<p class="muted">The autoscaler's fleet view has no join of VMs and runners yet: runner columns are empty.</p>`}
    ${
      pool.vms.length === 0
        ? html`<p class="muted">No VMs.</p>`
        : html`<table class="vms">
            <thead>
              <tr>
                <th>VM</th>
                <th>MIG</th>
                <th>Zone</th>
                <th>Action</th>
                <th>VM status</th>
                <th>Template (runner)</th>
                <th>State</th>
                <th>Runner</th>
                <th>Reported version</th>
                <th>Runner status</th>
                <th>Busy</th>
                <th>Labels</th>
                <th class="num">Age</th>
              </tr>
            </thead>
            <tbody>
              ${pool.vms.map(vmRow)}
            </tbody>
          </table>`
    }

    ${
      pool.queuedWithoutCapacity.length === 0
        ? ''
        : html`<h3>Queued jobs without capacity (${pool.queuedWithoutCapacity.length})</h3>
            <table class="queued">
              <thead>
                <tr>
                  <th>Job</th>
                  <th>Repository</th>
                  <th>Queued</th>
                  <th>Last attempt</th>
                </tr>
              </thead>
              <tbody>
                ${pool.queuedWithoutCapacity.map(
                  (j) =>
                    html`<tr>
                      <td>${j.jobId}</td>
                      <td>${j.repository}</td>
                      <td>${when(j.queuedAt, now)}</td>
                      <td>${badge(j.outcome === 'failed' ? 'failed' : 'warn', j.outcome)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
    }

    <details${pool.recentDecisions.length > 0 ? html` open` : ''}>
      <summary>Recent scale-up decisions (${pool.recentDecisions.length})</summary>
      ${
        pool.recentDecisions.length === 0
          ? html`<p class="muted">None yet.</p>`
          : html`<table class="decisions">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Job</th>
                  <th>VM</th>
                  <th>Outcome</th>
                  <th>MIG</th>
                  <th>Why</th>
                  <th>From</th>
                </tr>
              </thead>
              <tbody>
                ${pool.recentDecisions.map(
                  (d) =>
                    html`<tr>
                      <td>${when(d.at, now)}</td>
                      <td>${dash(d.jobId)}</td>
                      <td><code>${d.instance}</code></td>
                      <td>
                        ${badge(d.outcome === 'created' || d.outcome === 'exists' ? 'ok' : d.outcome === 'failed' ? 'failed' : 'warn', d.outcome)}
                      </td>
                      <td>${dash(d.mig ? (d.mig.split('/').pop() ?? d.mig) : null)}</td>
                      <td>${dash(d.reason)}</td>
                      <td>${d.source}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
    </details>

    <details${pool.reaperDecisions.length > 0 ? html` open` : ''}>
      <summary>Recent reaper decisions (${pool.reaperDecisions.length})</summary>
      ${
        pool.reaperDecisions.length === 0
          ? html`<p class="muted">
              None${pool.hasJoin ? ' yet' : ' (the autoscaler reports no reaper decisions)'}.
            </p>`
          : html`<table class="reaper">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Why</th>
                  <th>Action</th>
                  <th>Outcome</th>
                  <th>VM</th>
                  <th>Runner</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody>
                ${pool.reaperDecisions.map(
                  (d) =>
                    html`<tr>
                      <td>${when(d.at, now)}</td>
                      <td>${d.kind}</td>
                      <td>${d.action}</td>
                      <td>
                        ${badge(d.outcome === 'deleted' ? 'ok' : d.outcome === 'failed' ? 'failed' : 'unknown', d.outcome)}
                      </td>
                      <td>${d.instance ? html`<code>${d.instance}</code>` : dash(null)}</td>
                      <td>${dash(d.runnerName)}</td>
                      <td>${d.reason}${d.detail ? html` <span class="muted">(${d.detail})</span>` : ''}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
    </details>
  </section>`;
}

/**
 * The status page: server-rendered HTML with every value escaped, one inline style sheet (allowed by hash),
 * no script, and a `<meta http-equiv="refresh">` so it stays current on a second screen without JavaScript.
 */
export function renderStatusPage(view: StatusView, viewer: { email: string }): string {
  const now = Date.parse(view.generatedAt);
  const latest = view.releases.latest;
  const alarm = view.pools.some(
    (p) => p.runnerVersion.level === 'expired' || p.runnerVersion.level === 'error' || p.scaleUpBlockedReason,
  );
  const titleElement = html`<title>Fleet status${alarm ? ' (!)' : ''}</title>`;
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta http-equiv="refresh" content="${REFRESH_SECONDS}" />
        <meta name="referrer" content="no-referrer" />
        ${titleElement} ${STYLE_ELEMENT}
      </head>
      <body>
        <header>
          <h1>GitHub runners: fleet status</h1>
          <span
            >as of
            <time datetime="${view.generatedAt}"
              >${view.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time
            ></span
          >
          <span>refreshes every ${REFRESH_SECONDS} s</span>
          <span
            >latest actions/runner:
            ${latest ? html`${latest.version} (${latest.publishedAt.slice(0, 10)})` : 'unknown'}</span
          >
          <span>signed in as ${viewer.email}</span>
        </header>
        <main>
          ${view.autoscaler.error ? html`<div class="alert error">The autoscaler's fleet view could not be read: ${view.autoscaler.error}</div>` : ''}
          ${view.releases.error ? html`<div class="alert warn">actions/runner releases: ${view.releases.error}${view.releases.fetchedAt ? html` (showing the list read ${when(view.releases.fetchedAt, now)})` : ''}</div>` : ''}
          ${view.autoscaler.releasesError ? html`<div class="alert warn">The autoscaler cannot read the actions/runner releases (${view.autoscaler.releasesError}): it stops no pool for an outdated runner version until it can.</div>` : ''}
          ${view.pools
            .filter((pool) => pool.scaleUpBlockedReason)
            .map(
              (pool) =>
                html`<div class="alert error blocked">
                  <strong>Pool <a href="#pool-${pool.name}">${pool.name}</a> creates no VMs:</strong>
                  ${pool.scaleUpBlockedReason}
                </div>`,
            )}
          <div class="cards">${view.pools.map(poolCard)}</div>
          ${view.pools.map((pool) => poolSection(pool, now))}
          <h2>Deliveries</h2>
          <h3>Failed (${view.deliveries.failed.length})</h3>
          ${deliveryTable(view.deliveries.failed, now)}
          <h3>Redelivered (${view.deliveries.redelivered.length})</h3>
          ${deliveryTable(view.deliveries.redelivered, now)}
        </main>
        <footer>
          <p>Runner versions are read from ${view.versionSource}</p>
          <p>
            GitHub stops sending jobs to a runner with updates disabled ${UPDATE_WINDOW_DAYS} days after the
            first newer actions/runner release (at once for a release GitHub marks critical, which its API
            does not say); this page warns at ${WARN_AFTER_DAYS} days and calls it an error at
            ${ERROR_AFTER_DAYS}. The same data: <a href="status.json">status.json</a>.
          </p>
        </footer>
      </body>
    </html> `;
  return page.value;
}
