import { Viewer } from "../viewer/Viewer";

/** A study's images on their own (staff opening a study from a case, say). */
export function ViewerPage({ studyUid }: { studyUid: string }) {
  return (
    <section className="page viewer-page">
      <Viewer studyUid={studyUid} />
    </section>
  );
}
