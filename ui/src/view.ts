/** What a route renders: the document title and the view's content (its first h1 gets focus). */
export interface View {
  title: string;
  body: Node;
}
