import { ImageStorageService } from '../../index.js';

export { ImageStorageService, SidecarError, promptHash } from '../../index.js';
export default ImageStorageService;
