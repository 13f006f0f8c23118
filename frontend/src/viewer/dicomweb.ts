// What the viewer asks our DICOMweb (/dicomweb) for besides frames: the series of a study, a
// series' metadata and its thumbnail. All through the API client (token, refresh, ApiError).

import type { ApiClient } from "../api/client";
import {
  imagesOfSeries,
  seriesFromQido,
  type DicomJson,
  type ImageRef,
  type SeriesInfo,
} from "./metadata";

export const DICOMWEB = "/dicomweb";

function seriesPath(studyUid: string, seriesUid: string): string {
  const study = encodeURIComponent(studyUid);
  return `${DICOMWEB}/studies/${study}/series/${encodeURIComponent(seriesUid)}`;
}

const studies = new Map<string, Promise<SeriesInfo[]>>();

/** A study's series; asked once per page (the viewer's loader asks before Cornerstone is in). */
export function studySeries(client: ApiClient, studyUid: string): Promise<SeriesInfo[]> {
  let found = studies.get(studyUid);
  if (!found) {
    const path = `${DICOMWEB}/studies/${encodeURIComponent(studyUid)}/series`;
    found = client
      .request<DicomJson[] | undefined>(path)
      .then((results) => seriesFromQido(results ?? []));
    found.catch(() => studies.delete(studyUid));
    studies.set(studyUid, found);
  }
  return found;
}

/** Starts fetching what the first image needs (the series list, the first series' metadata)
 * while Cornerstone's code is still loading. */
export function prefetchStudy(client: ApiClient, studyUid: string): void {
  studySeries(client, studyUid).then(
    (list) => {
      if (list[0]) void imagesOf(client, studyUid, list[0].seriesUid).catch(() => undefined);
    },
    () => undefined,
  );
}

const seriesImages = new Map<string, Promise<ImageRef[]>>();

/** A series' images in reading order; asked once per page (the metadata of a stored series does
 * not change while it is read). */
export function imagesOf(
  client: ApiClient,
  studyUid: string,
  seriesUid: string,
): Promise<ImageRef[]> {
  const key = `${studyUid}/${seriesUid}`;
  let found = seriesImages.get(key);
  if (!found) {
    const path = `${seriesPath(studyUid, seriesUid)}/metadata`;
    const base = `${window.location.origin}${DICOMWEB}`;
    found = client
      .request<DicomJson[]>(path)
      .then((instances) => imagesOfSeries(base, studyUid, seriesUid, instances));
    found.catch(() => seriesImages.delete(key));
    seriesImages.set(key, found);
  }
  return found;
}

/** A series' thumbnail as an object URL (the caller revokes it). */
export async function thumbnailUrl(
  client: ApiClient,
  studyUid: string,
  seriesUid: string,
  signal: AbortSignal,
): Promise<string> {
  const path = `${seriesPath(studyUid, seriesUid)}/thumbnail`;
  const token = await client.accessToken();
  const res = await fetch(path, {
    headers: { Accept: "image/jpeg", Authorization: `Bearer ${token}` },
    signal,
  });
  if (!res.ok) throw new Error(`thumbnail: HTTP ${res.status}`);
  return URL.createObjectURL(await res.blob());
}
