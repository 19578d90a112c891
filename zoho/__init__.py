"""What the project knows about Zoho, without I/O: data centres and token URLs, the
answers of its accounts server and CRM API, error codes and what they mean, and the
field names of each module as webhooks and the API spell them."""
