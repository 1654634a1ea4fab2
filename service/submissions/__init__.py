"""Job submissions: the train and label submitters, the config form field, dataset uploads and the process pool
that checks them, and the first-run bootstrap job."""
