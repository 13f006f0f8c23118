import { Component, type ReactNode } from "react";

/** Keeps a viewer failure inside the viewer's area: the report beside it stays usable. */
export class ViewerBoundary extends Component<
  { fallback: (message: string) => ReactNode; children: ReactNode },
  { message: string | null }
> {
  override state = { message: null as string | null };

  static getDerivedStateFromError(error: unknown): { message: string } {
    return { message: error instanceof Error ? error.message : String(error) };
  }

  override render(): ReactNode {
    return this.state.message !== null ? this.props.fallback(this.state.message) : this.props.children;
  }
}
