import crypto from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { createFakeApp, listenOnLoopback } from './fake-server.js';
import type { FakeControls, RunningFake } from './fake-server.js';
import { identityTokenPayload } from './google-issuer.js';
import type { ComputeEngineIdentity, FakeGoogleIssuer } from './google-issuer.js';

/** The VM a fake metadata server describes. */
export interface SimulatedVm {
  projectId: string;
  projectNumber: number;
  /** Short zone name, e.g. `us-central1-a`. */
  zone: string;
  /** A 19-digit decimal string; it may exceed 2^63, so it is never a number. */
  instanceId: string;
  instanceName: string;
  serviceAccountEmail: string;
  /** Numeric id of the service account: `sub` and `azp` of its identity tokens. */
  serviceAccountSub?: string;
  /** Custom instance metadata (`instance/attributes/`). */
  attributes: Record<string, string>;
  /** Put into `google.compute_engine.license_id` when a `format=full` token is asked with `licenses=TRUE`. */
  licenseIds?: string[];
}

/** A running fake metadata server for one simulated VM. */
export interface FakeMetadataServer extends RunningFake {
  readonly controls: FakeControls;
  /** The live VM description: change it (or its attributes) and the next request sees the change. */
  readonly vm: SimulatedVm;
  /** `127.0.0.1:PORT`, the value for `GCE_METADATA_HOST`. */
  readonly host: string;
  /** Every access token handed out, oldest first, so a fake API can check that the token it got came from here. */
  readonly accessTokens: string[];
  setAttribute(key: string, value: string): void;
}

/** The Compute Engine identity a `format=full` token carries for this VM. */
export function computeIdentityOf(vm: SimulatedVm): ComputeEngineIdentity {
  return {
    projectId: vm.projectId,
    projectNumber: vm.projectNumber,
    zone: vm.zone,
    instanceId: vm.instanceId,
    instanceName: vm.instanceName,
  };
}

type Reply = { status: number; text: string } | { json: unknown };

const text = (body: string, status = 200): Reply => ({ status, text: body });
const listing = (entries: string[]): Reply => text(entries.map((e) => `${e}\n`).join(''));
const NOT_FOUND = text('Not Found\n', 404);
const V1 = '/computeMetadata/v1';
const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

/**
 * Starts a loopback Compute Engine metadata server for `vm`; identity tokens are signed by `issuer`.
 * The VM is copied, so servers started from one template do not share attributes.
 */
export async function startFakeMetadataServer(options: {
  issuer: FakeGoogleIssuer;
  vm: SimulatedVm;
  port?: number;
}): Promise<FakeMetadataServer> {
  const { issuer } = options;
  const vm: SimulatedVm = { ...options.vm, attributes: { ...options.vm.attributes } };
  const accessTokens: string[] = [];

  const serviceAccount = (): Record<string, unknown> => ({
    aliases: ['default'],
    email: vm.serviceAccountEmail,
    scopes: SCOPES,
  });

  const identityToken = (query: Record<string, string>): Reply => {
    const { audience, format = 'standard', licenses } = query;
    // The real server's message for a missing audience.
    if (!audience) return text('non-empty audience parameter required\n', 400);
    if (format !== 'standard' && format !== 'full') return text(`invalid format: ${format}\n`, 400);
    const payload = identityTokenPayload({
      audience,
      email: vm.serviceAccountEmail,
      ...(vm.serviceAccountSub !== undefined && { sub: vm.serviceAccountSub }),
      ...(format === 'full' && { compute: computeIdentityOf(vm) }),
    });
    if (format === 'full' && licenses?.toUpperCase() === 'TRUE') {
      const google = payload.google as { compute_engine: Record<string, unknown> };
      google.compute_engine.license_id = vm.licenseIds ?? [];
    }
    return text(issuer.sign(payload));
  };

  const accessToken = (): Reply => {
    const token = `ya29.fake-${crypto.randomBytes(24).toString('base64url')}`;
    accessTokens.push(token);
    return { json: { access_token: token, expires_in: 3599, token_type: 'Bearer' } };
  };

  const serviceAccountEntry = (email: string, rest: string, query: Record<string, string>): Reply => {
    if (email !== 'default' && email !== vm.serviceAccountEmail) return NOT_FOUND;
    switch (rest) {
      case '':
        return query.recursive?.toLowerCase() === 'true'
          ? { json: serviceAccount() }
          : listing(['aliases', 'email', 'identity', 'scopes', 'token']);
      case 'aliases':
        return listing(['default']);
      case 'email':
        return text(vm.serviceAccountEmail);
      case 'scopes':
        return listing(SCOPES);
      case 'token':
        return accessToken();
      case 'identity':
        return identityToken(query);
      default:
        return NOT_FOUND;
    }
  };

  /** Answers one GET; `key` is the path below `/computeMetadata/v1/` without a trailing slash. */
  const answer = (key: string, query: Record<string, string>): Reply => {
    const recursive = query.recursive?.toLowerCase() === 'true';
    const zone = `projects/${vm.projectNumber}/zones/${vm.zone}`;
    switch (key) {
      case '':
        return listing(['instance/', 'project/']);
      // gcp-metadata's isAvailable() pings `instance` (no slash) to detect GCE.
      case 'instance':
        return listing(['attributes/', 'hostname', 'id', 'name', 'service-accounts/', 'zone']);
      case 'instance/id':
        return text(vm.instanceId);
      case 'instance/name':
        return text(vm.instanceName);
      case 'instance/zone':
        return text(zone);
      case 'instance/hostname':
        return text(`${vm.instanceName}.${vm.zone}.c.${vm.projectId}.internal`);
      case 'instance/attributes':
        return recursive ? { json: vm.attributes } : listing(Object.keys(vm.attributes));
      case 'instance/service-accounts':
        return recursive
          ? { json: { default: serviceAccount(), [vm.serviceAccountEmail]: serviceAccount() } }
          : listing(['default/', `${vm.serviceAccountEmail}/`]);
      case 'project':
        return listing(['numeric-project-id', 'project-id']);
      case 'project/project-id':
        return text(vm.projectId);
      case 'project/numeric-project-id':
        return text(String(vm.projectNumber));
      // GoogleAuth.getUniverseDomainFromMetadataServer() asks this.
      case 'universe/universe-domain':
        return text('googleapis.com');
    }
    const attribute = /^instance\/attributes\/(.+)$/.exec(key);
    if (attribute) {
      const name = attribute[1]!;
      return Object.hasOwn(vm.attributes, name) ? text(vm.attributes[name]!) : NOT_FOUND;
    }
    const account = /^instance\/service-accounts\/([^/]+)(?:\/(.*))?$/.exec(key);
    if (account) return serviceAccountEntry(account[1]!, account[2] ?? '', query);
    return NOT_FOUND;
  };

  const { app, controls } = createFakeApp();
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set('Metadata-Flavor', 'Google');
    // The root is exempt: Go's metadata.OnGCE() and others probe `/` without the header and only check
    // the response header.
    if (req.path !== '/' && req.get('Metadata-Flavor') !== 'Google') {
      res
        .status(403)
        .type('text/plain')
        .send(
          `Your client does not have permission to get URL ${req.path} from this server. ` +
            'Missing Metadata-Flavor:Google header.\n',
        );
      return;
    }
    // The real server refuses anything that looks proxied, so a proxy on the VM cannot be used to reach it
    // (https://cloud.google.com/compute/docs/metadata/querying-metadata).
    if (req.get('X-Forwarded-For') !== undefined) {
      res.status(403).type('text/plain').send('Request had X-Forwarded-For header and was rejected.\n');
      return;
    }
    next();
  });
  app.use((req: Request, res: Response) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).type('text/plain').send('Method Not Allowed\n');
      return;
    }
    const query = Object.fromEntries(new URL(req.originalUrl, 'http://fake').searchParams);
    const path = req.path.replace(/\/+$/, '');
    let reply: Reply;
    if (path === '') reply = listing(['computeMetadata/']);
    else if (path === '/computeMetadata') reply = listing(['v1/']);
    else if (path === V1 || path.startsWith(`${V1}/`)) reply = answer(path.slice(V1.length + 1), query);
    else reply = NOT_FOUND;
    if ('json' in reply) res.status(200).json(reply.json);
    else res.status(reply.status).type('text/plain').send(reply.text);
  });

  const running = await listenOnLoopback(app, options.port);
  return {
    ...running,
    controls,
    vm,
    host: `127.0.0.1:${running.port}`,
    accessTokens,
    setAttribute: (key, value) => {
      vm.attributes[key] = value;
    },
  };
}
