import type { ReactNode } from "react";

/** A table that may scroll sideways on a narrow screen: a named region that takes the focus, so
 * that keyboard users can scroll it too. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
