// The viewer as the pages use it: Cornerstone3D and its codecs (several MB) load only when a
// viewer is first shown, so the other screens do not wait for them.

import { lazy, Suspense, useEffect } from "react";

import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { prefetchStudy } from "./dicomweb";
import type { ViewerProps } from "./types";

const loadCore = () => import("./ViewerCore");
const ViewerCore = lazy(loadCore);

/** Starts fetching and compiling the viewer's code ahead of need (the reading room's worklist
 * calls it): opening a case then waits only for its images. Idempotent: the browser loads a
 * module once. */
export function preloadViewer(): void {
  void loadCore().catch(() => undefined);
}

export function Viewer(props: ViewerProps) {
  const { t } = useI18n();
  const { client } = useSession();

  useEffect(() => {
    performance.mark("radrelay.viewer.open");
  }, []);

  useEffect(() => {
    prefetchStudy(client, props.studyUid);
  }, [client, props.studyUid]);

  return (
    <Suspense
      fallback={
        <div className="viewer" role="status">
          {t("app.loading")}
        </div>
      }
    >
      <ViewerCore {...props} />
    </Suspense>
  );
}
