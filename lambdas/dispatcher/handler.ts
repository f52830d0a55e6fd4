// Placeholder: the dispatcher handler is being written (issue 2). The CDK stack bundles this entry.
export const handler = async (): Promise<void> => {
  throw new Error('dispatcher handler not implemented yet');
};
