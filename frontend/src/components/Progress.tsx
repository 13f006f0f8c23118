import { useId } from "react";

/** A labelled progress bar (the native element: announced by screen readers). */
export function Progress({ label, value, max, text }: { label: string; value: number; max: number; text: string }) {
  const id = useId();
  const safeMax = max > 0 ? max : 1;
  return (
    <div className="progress">
      <div className="progress-label">
        <span id={id}>{label}</span>
        <span className="progress-text">{text}</span>
      </div>
      <progress aria-labelledby={id} value={Math.min(value, safeMax)} max={safeMax} />
    </div>
  );
}
