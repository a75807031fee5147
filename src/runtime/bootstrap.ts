// placeholder: the Lambda-semantics bootstrap lands here
