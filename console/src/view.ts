// What the router mounts: a titled element refreshed on every live poll.
export interface View {
  title: string;
  el: HTMLElement;
  /** Fetch and re-render; must resolve (never throw). */
  update(): Promise<void>;
  destroy?(): void;
}
