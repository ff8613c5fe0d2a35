/** Pulling images with progress (layers seen/done, bytes current/total). */
import type Dockerode from 'dockerode';
import { dockerErrorMessage, dockerSettingsOf, isDockerCallError, withCallLimits } from './client.ts';

export interface PullProgress {
  layers: number;
  layersDone: number;
  current: number;
  total: number;
}

const DONE = new Set(['Pull complete', 'Already exists']);

interface ProgressLine {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * `docker pull` with progress. Rejects with an Error that names the image, says it could not be
 * pulled and gives the fix.
 */
export async function pullImage(docker: Dockerode, image: string, onProgress?: (p: PullProgress) => void): Promise<void> {
  const failure = (err: unknown) =>
    isDockerCallError(err)
      ? new Error(`image ${image} could not be pulled: ${err.message}`)
      : new Error(
          `image ${image} could not be pulled (registry unreachable or image not found): ${typeof err === 'string' ? err : dockerErrorMessage(err)}. ` +
            `Fix: build or push ${image} to its registry, or check the image name and tag.`,
        );
  // The whole progress stream gets the client's pull limit (the request itself the ordinary one).
  const pullTimeoutMs = dockerSettingsOf(docker).pullTimeoutMs;
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await withCallLimits({ streamTimeoutMs: pullTimeoutMs }, () => docker.pull(image))) as NodeJS.ReadableStream;
  } catch (err) {
    throw failure(err);
  }
  const layers = new Map<string, { current: number; total: number; done: boolean }>();
  let streamError: string | undefined;
  let lastEmit = 0;
  const emit = (force: boolean) => {
    if (!onProgress) return;
    const now = Date.now();
    if (!force && now - lastEmit < 100) return;
    lastEmit = now;
    let current = 0;
    let total = 0;
    let done = 0;
    for (const l of layers.values()) {
      current += l.current;
      total += l.total;
      if (l.done) done++;
    }
    onProgress({ layers: layers.size, layersDone: done, current, total });
  };
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => {
        if (err) reject(failure(err));
        else if (streamError) reject(failure(streamError));
        else {
          emit(true);
          resolve();
        }
      },
      (line: ProgressLine) => {
        if (line.error || line.errorDetail?.message) {
          streamError = (line.errorDetail?.message ?? line.error ?? 'unknown error').trim();
          return;
        }
        const id = line.id;
        const status = line.status ?? '';
        if (!id || /^Pulling from /.test(status) || status.startsWith('Digest:') || status.startsWith('Status:')) return;
        const layer = layers.get(id) ?? { current: 0, total: 0, done: false };
        layers.set(id, layer);
        if (status === 'Downloading' && line.progressDetail) {
          layer.current = line.progressDetail.current ?? layer.current;
          layer.total = line.progressDetail.total ?? layer.total;
        }
        if (status === 'Download complete' && layer.total) layer.current = layer.total;
        if (DONE.has(status)) {
          layer.done = true;
          if (layer.total) layer.current = layer.total;
        }
        emit(false);
      },
    );
  });
}

/** The engine's images, from one `GET /images/json`. */
export interface LocalImages {
  /** Every RepoTag and RepoDigest, sorted. */
  refs: string[];
  /** Each of those references → the ID of the image it names now (`sha256:…`, the config digest). */
  ids: Record<string, string>;
}

/**
 * Image references present in the engine and the image each names now. One list call: image list
 * entries carry `Id`, `RepoTags` and `RepoDigests`, so no image is inspected.
 */
export async function listLocalImages(docker: Dockerode): Promise<LocalImages> {
  const images = await docker.listImages();
  const ids: Record<string, string> = {};
  for (const img of images) {
    for (const r of [...(img.RepoTags ?? []), ...(img.RepoDigests ?? [])]) if (r && !r.startsWith('<none>')) ids[r] = img.Id;
  }
  return { refs: Object.keys(ids).sort(), ids };
}

/** Image references present in the engine: every RepoTag and RepoDigest. */
export async function listImageRefs(docker: Dockerode): Promise<string[]> {
  return (await listLocalImages(docker)).refs;
}

/**
 * Pulls each reference (pull policy `always`), a few at a time, so the local tag names what the registry
 * has now. A reference that is already up to date costs the engine one manifest request to its registry.
 * Rejects with {@link pullImage}'s error (naming the image and the fix) when one cannot be pulled.
 */
export async function refreshImages(
  docker: Dockerode,
  refs: readonly string[],
  onProgress?: (image: string, p: PullProgress) => void,
  concurrency = 4,
): Promise<void> {
  const queue = [...new Set(refs)].sort();
  const worker = async () => {
    for (let ref = queue.shift(); ref !== undefined; ref = queue.shift()) {
      const image = ref;
      await pullImage(docker, image, onProgress ? (p) => onProgress(image, p) : undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
}
