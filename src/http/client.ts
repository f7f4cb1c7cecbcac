// Placeholder: interface only; implementation in progress.
export interface HttpClient {}
