// Placeholder: the "test connection" handler is being written (issue 4). The CDK stack bundles this entry.
export const handler = async (): Promise<void> => {
  throw new Error('connection-test handler not implemented yet');
};
