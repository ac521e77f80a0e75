import path from 'node:path';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import type { FakeGoogleIssuer } from './fakes/google-issuer.js';
import { startFakeMetadataServer } from './fakes/metadata-server.js';
import { freePort, repoRoot, spawnNode, waitUntilAnswering } from './node-process.js';

/** The built autoscaler running as a child process, answering on loopback. */
export interface AutoscalerProcess {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Stops the child, then its metadata server. */
  close(): Promise<void>;
}

/**
 * Starts `dist/`'s autoscaler as Cloud Run would run it: configured from `env` alone (nothing of this
 * process's environment but PATH), its Google credentials from a fake metadata server whose identity lives
 * in `project`, and no gcloud configuration to fall back on. Resolves once `GET /healthz` answers 200.
 */
export async function startAutoscalerProcess(options: {
  issuer: FakeGoogleIssuer;
  project: { projectId: string; projectNumber: string };
  /** The Cloud Run instance's id as the metadata server reports it (19 digits). */
  instanceId: string;
  /** The service's configuration; PORT, HOST and the metadata host are set here. */
  env: Record<string, string>;
  onLog?: (line: string) => void;
}): Promise<AutoscalerProcess> {
  const { projectId, projectNumber } = options.project;
  const metadata = await startFakeMetadataServer({
    issuer: options.issuer,
    vm: {
      projectId,
      projectNumber: Number(projectNumber),
      zone: 'us-central1-a',
      instanceId: options.instanceId,
      instanceName: 'autoscaler',
      serviceAccountEmail: `autoscaler@${projectId}.iam.gserviceaccount.com`,
      attributes: {},
    },
  });
  const port = await freePort();
  const child = spawnNode(
    path.join(repoRoot(), SERVICE_ENTRY_POINTS.autoscaler.main),
    {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      CLOUDSDK_CONFIG: '/nonexistent/gcloud',
      GCE_METADATA_HOST: metadata.host,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...options.env,
      PORT: String(port),
    },
    options.onLog ?? (() => {}),
  );
  try {
    await waitUntilAnswering(child, port, { path: '/healthz', status: 200 });
  } catch (error) {
    await child.stop(1000);
    await metadata.close();
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await child.stop();
      await metadata.close();
    },
  };
}
