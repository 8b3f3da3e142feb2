"""The county's web console (县级政务服务管理局): halls, devices, 好差评 and overdue cases across the county."""
