import { useEffect, useId, useRef, type ReactNode } from "react";

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/** A modal dialog: the page behind is inert (showModal), Tab cycles within it, Esc closes it,
 * and the focus goes back where it was when it closes. Focus starts on the element marked
 * `data-autofocus` (or `autofocus`), else on the first field or button. With `closeLabel` the
 * title bar has a close button too. */
export function Dialog({
  title,
  onClose,
  children,
  closeLabel,
  wide = false,
  className = "",
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  closeLabel?: string;
  /** For tables and explanations rather than a short form. */
  wide?: boolean;
  className?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    const first =
      dialog.querySelector<HTMLElement>("[data-autofocus], [autofocus]") ??
      dialog.querySelector<HTMLElement>("input, textarea, select, button");
    first?.focus();
    const onCancel = (e: Event) => {
      e.preventDefault();
      close.current();
    };
    dialog.addEventListener("cancel", onCancel);
    return () => {
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      before?.focus();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      role="dialog"
      aria-modal="true"
      aria-labelledby={`${id}-title`}
      className={`app-dialog${wide ? " wide" : ""} ${className}`}
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.preventDefault();
          e.stopPropagation();
          close.current();
          return;
        }
        if (e.key !== "Tab") return;
        const items = [...e.currentTarget.querySelectorAll<HTMLElement>(FOCUSABLE)];
        const first = items[0];
        const last = items.at(-1);
        if (!first || !last) return;
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first.focus();
        }
      }}
    >
      <div className="app-dialog-head">
        <h2 id={`${id}-title`}>{title}</h2>
        {closeLabel && (
          <button type="button" className="secondary small" onClick={() => close.current()}>
            {closeLabel}
          </button>
        )}
      </div>
      {children}
    </dialog>
  );
}
