import crypto from 'node:crypto';
import { escapeHtml, html, renderStatusPage, STATUS_PAGE_CSP } from '#fleet-status';
import type { StatusView } from '#fleet-status';

const HOSTILE = '<script>alert(1)</script>"\'&';

/** A status with hostile text in every field a fleet view or Compute could put there. */
function hostileView(): StatusView {
  return {
    generatedAt: '2026-11-29T12:00:00.000Z',
    autoscaler: { generatedAt: '2026-11-29T11:59:59.000Z', error: HOSTILE, releasesError: HOSTILE },
    releases: {
      latest: { version: '2.331.0', publishedAt: '2026-11-24T10:00:00Z' },
      fetchedAt: '2026-11-29T11:00:00.000Z',
      error: HOSTILE,
    },
    versionSource: 'template metadata',
    pools: [
      {
        name: 'pool"><img src=x onerror=alert(1)>',
        labels: [HOSTILE],
        maxRunners: 5,
        inUse: 1,
        queuedJobs: 1,
        scaleUpBlockedReason: HOSTILE,
        runnerVersion: {
          version: '2.329.0',
          level: 'expired',
          latest: { version: '2.331.0', publishedAt: '2026-11-24T10:00:00Z' },
          firstNewer: { version: '2.330.0', publishedAt: '2026-10-20T10:00:00Z' },
          daysSince: 40,
          daysLeft: 0,
          atLeast: false,
          message: HOSTILE,
          versions: [{ version: HOSTILE, runners: 1 }],
          templateVersions: [HOSTILE],
          fromTemplatesOnly: false,
        },
        migs: [
          {
            mig: HOSTILE,
            name: HOSTILE,
            location: HOSTILE,
            targetSize: 1,
            shortage: HOSTILE,
            currentActions: { [HOSTILE]: 1 },
            updateType: HOSTILE,
            isReached: false,
            templates: [
              { url: HOSTILE, name: HOSTILE, role: 'canary', runnerVersion: HOSTILE, target: 1, members: 0 },
            ],
            error: null,
          },
        ],
        vms: [
          {
            instance: HOSTILE,
            mig: HOSTILE,
            zone: HOSTILE,
            currentAction: HOSTILE,
            instanceStatus: HOSTILE,
            template: HOSTILE,
            templateVersion: HOSTILE,
            state: HOSTILE,
            runner: {
              id: 1,
              name: HOSTILE,
              status: HOSTILE,
              busy: true,
              labels: [HOSTILE],
              version: HOSTILE,
            },
            ageSeconds: 5,
            keep: true,
          },
        ],
        hasJoin: true,
        queuedWithoutCapacity: [{ jobId: 1, repository: HOSTILE, queuedAt: HOSTILE, outcome: HOSTILE }],
        recentDecisions: [
          {
            at: HOSTILE,
            jobId: 1,
            instance: HOSTILE,
            outcome: HOSTILE,
            mig: HOSTILE,
            reason: HOSTILE,
            source: HOSTILE,
          },
        ],
        reaperDecisions: [
          {
            at: HOSTILE,
            kind: HOSTILE,
            action: HOSTILE,
            outcome: HOSTILE,
            instance: HOSTILE,
            mig: HOSTILE,
            runnerName: HOSTILE,
            reason: HOSTILE,
            detail: HOSTILE,
          },
        ],
      },
    ],
    deliveries: {
      failed: [{ at: HOSTILE, guid: HOSTILE, deliveryId: 1, jobId: 1, status: 503, reason: HOSTILE }],
      redelivered: [],
    },
  };
}

describe('the status page', () => {
  it('puts a pool that stopped scaling up at the top, and says when the autoscaler cannot judge versions', () => {
    const view = hostileView();
    view.pools[0]!.name = 'linux-cpu';
    view.pools[0]!.scaleUpBlockedReason = 'every runner of pool linux-cpu runs 2.329.0 or older';
    view.autoscaler = { generatedAt: view.generatedAt, error: null, releasesError: 'GitHub answered 503' };
    const page = renderStatusPage(view, { email: 'alice@example.com' });
    const main = page.slice(page.indexOf('<main>'));
    const banner = main.indexOf('Pool <a href="#pool-linux-cpu">linux-cpu</a> creates no VMs:');
    expect(banner).toBeGreaterThan(0);
    expect(banner).toBeLessThan(main.indexOf('class="cards"'));
    expect(page).toContain(
      'The autoscaler cannot read the actions/runner releases (GitHub answered 503): it stops no pool',
    );
  });

  it('escapes everything it shows', () => {
    const page = renderStatusPage(hostileView(), { email: `${HOSTILE}@example.com` });
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<img');
    expect(page).not.toMatch(/"'&[^a#]/);
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;');
    // Every element of the page is one the renderer writes: nothing came from the data.
    const tags = new Set([...page.matchAll(/<([a-z0-9]+)[\s>]/g)].map((m) => m[1]));
    expect([...tags].sort()).toEqual(
      [
        'a',
        'body',
        'br',
        'code',
        'details',
        'div',
        'footer',
        'h1',
        'h2',
        'h3',
        'head',
        'header',
        'html',
        'main',
        'meta',
        'p',
        'section',
        'span',
        'strong',
        'style',
        'summary',
        'table',
        'tbody',
        'td',
        'th',
        'thead',
        'time',
        'title',
        'tr',
      ].sort(),
    );
  });

  it('allows exactly its own style by hash, refreshes itself and has no script', () => {
    const page = renderStatusPage(hostileView(), { email: 'alice@example.com' });
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)?.[1] ?? '';
    const hash = crypto.createHash('sha256').update(style).digest('base64');
    expect(STATUS_PAGE_CSP).toContain(`style-src 'sha256-${hash}'`);
    expect(STATUS_PAGE_CSP).toMatch(/^default-src 'none'/);
    expect(STATUS_PAGE_CSP).not.toMatch(/script-src|unsafe/);
    expect(page).toMatch(/<meta http-equiv="refresh" content="30"/);
    expect(page).toContain('<title>Fleet status (!)</title>');
  });

  it('says scale-up stopped and past the window for an expired pool', () => {
    const page = renderStatusPage(hostileView(), { email: 'alice@example.com' });
    expect(page).toContain('Scale-up stopped:');
    expect(page).toContain('past 30 days');
    expect(page).toContain('New VMs would register and never get a job');
  });

  it('html`` escapes values, keeps nested markup, and renders lists and nothing', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(
      html`<p title="${'"x"'}">${inner}${['a', '<'] as const}${null}${undefined}${false}${0}</p>`.value,
    ).toBe('<p title="&quot;x&quot;"><b>&lt;i&gt;</b>a&lt;0</p>');
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
  });
});
